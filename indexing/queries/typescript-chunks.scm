; Definitions that become chunks (captures described in indexing/languages.py).
; `export` and `declare` belong to the chunk of what they wrap.

(export_statement
  declaration: [(class_declaration name: (_) @name)
                (abstract_class_declaration name: (_) @name)] @definition.class) @outer
[(class_declaration name: (_) @name)
 (abstract_class_declaration name: (_) @name)] @definition.class

(export_statement
  declaration: (interface_declaration name: (_) @name) @definition.interface) @outer
(interface_declaration name: (_) @name) @definition.interface

(export_statement
  declaration: (enum_declaration name: (_) @name) @definition.enum) @outer
(enum_declaration name: (_) @name) @definition.enum

(export_statement
  declaration: (type_alias_declaration name: (_) @name) @definition.type) @outer
(type_alias_declaration name: (_) @name) @definition.type

(export_statement
  declaration: (internal_module name: (_) @name) @definition.namespace) @outer
(internal_module name: (_) @name) @definition.namespace

(ambient_declaration (module name: (_) @name) @definition.module) @outer
(module name: (_) @name) @definition.module

(export_statement
  declaration: [(function_declaration name: (identifier) @name)
                (generator_function_declaration name: (identifier) @name)
                (function_signature name: (identifier) @name)] @definition.function) @outer
[(function_declaration name: (identifier) @name)
 (generator_function_declaration name: (identifier) @name)
 (function_signature name: (identifier) @name)] @definition.function

(method_definition name: (_) @name) @definition.method
(abstract_method_signature name: (_) @name) @definition.method
(method_signature name: (_) @name) @definition.method

; Class fields holding functions: handleClick = () => { ... }
(public_field_definition
  name: (_) @name
  value: [(arrow_function body: (_) @body) (function_expression body: (_) @body)]) @definition.method

; const f = () => { ... }
(export_statement
  declaration: (lexical_declaration
    (variable_declarator
      name: (identifier) @name
      value: [(arrow_function body: (_) @body) (function_expression body: (_) @body)])) @definition.function) @outer
(lexical_declaration
  (variable_declarator
    name: (identifier) @name
    value: [(arrow_function body: (_) @body) (function_expression body: (_) @body)])) @definition.function
(variable_declaration
  (variable_declarator
    name: (identifier) @name
    value: [(arrow_function body: (_) @body) (function_expression body: (_) @body)])) @definition.function
