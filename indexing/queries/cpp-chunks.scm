; Definitions that become chunks (captures described in indexing/languages.py).
; `Circle::name` defined outside its class gets @scope Circle; templates wrap what they declare.

(function_definition
  declarator: [(function_declarator declarator: [(identifier) (field_identifier) (destructor_name)
                                                  (operator_name)] @name)
               (pointer_declarator declarator: (function_declarator
                 declarator: [(identifier) (field_identifier) (operator_name)] @name))
               (reference_declarator (function_declarator
                 declarator: [(identifier) (field_identifier) (operator_name)] @name))
               (function_declarator declarator: (qualified_identifier scope: (_) @scope name: (_) @name))
               (pointer_declarator declarator: (function_declarator
                 declarator: (qualified_identifier scope: (_) @scope name: (_) @name)))
               (reference_declarator (function_declarator
                 declarator: (qualified_identifier scope: (_) @scope name: (_) @name)))
              ]) @definition.function

(template_declaration (function_definition) @definition.function) @outer
(template_declaration (class_specifier) @definition.class) @outer
(template_declaration (struct_specifier) @definition.struct) @outer

(class_specifier name: (_) @name body: (_)) @definition.class

(struct_specifier name: (_) @name body: (_)) @definition.struct

(union_specifier name: (_) @name body: (_)) @definition.union

(enum_specifier name: (_) @name body: (_)) @definition.enum

(type_definition type: (struct_specifier body: (_)) @definition.struct declarator: (type_identifier) @name) @outer

(namespace_definition name: (_)? @name body: (_)) @definition.namespace
