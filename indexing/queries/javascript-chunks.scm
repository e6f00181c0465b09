; Definitions that become chunks (captures described in indexing/languages.py).
; `export` and `export default` belong to the chunk of what they export.

(export_statement
  declaration: (class_declaration name: (_) @name) @definition.class) @outer
(class_declaration name: (_) @name) @definition.class

(export_statement
  declaration: (function_declaration name: (identifier) @name) @definition.function) @outer
(function_declaration name: (identifier) @name) @definition.function

(export_statement
  declaration: (generator_function_declaration name: (identifier) @name) @definition.function) @outer
(generator_function_declaration name: (identifier) @name) @definition.function

(method_definition name: (_) @name) @definition.method

; Class fields holding functions: handleClick = () => { ... }
(field_definition
  property: (_) @name
  value: [(arrow_function body: (_) @body) (function_expression body: (_) @body)]) @definition.method

; const f = () => { ... }, let g = function () { ... }
(export_statement
  declaration: [(lexical_declaration (variable_declarator
                  name: (identifier) @name
                  value: [(arrow_function body: (_) @body) (function_expression body: (_) @body)]))
                (variable_declaration (variable_declarator
                  name: (identifier) @name
                  value: [(arrow_function body: (_) @body) (function_expression body: (_) @body)]))]
  @definition.function) @outer
(lexical_declaration
  (variable_declarator
    name: (identifier) @name
    value: [(arrow_function body: (_) @body) (function_expression body: (_) @body)])) @definition.function
(variable_declaration
  (variable_declarator
    name: (identifier) @name
    value: [(arrow_function body: (_) @body) (function_expression body: (_) @body)])) @definition.function

; Foo.prototype.bar = function () { ... }, exports.baz = () => { ... }
(expression_statement
  (assignment_expression
    left: (member_expression property: (property_identifier) @name)
    right: [(arrow_function body: (_) @body) (function_expression body: (_) @body)])) @definition.function
