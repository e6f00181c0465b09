; Symbol table: definitions and references (captures described in indexing/languages.py).

(class_declaration name: (identifier) @name.definition.class)

(function_declaration name: (identifier) @name.definition.function)

(generator_function_declaration name: (identifier) @name.definition.function)

(method_definition name: [(property_identifier) (private_property_identifier)] @name.definition.method)

(field_definition
  property: [(property_identifier) (private_property_identifier)] @name.definition.method
  value: [(arrow_function) (function_expression)])

(variable_declarator
  name: (identifier) @name.definition.function
  value: [(arrow_function) (function_expression)])

(assignment_expression
  left: (member_expression property: (property_identifier) @name.definition.function)
  right: [(arrow_function) (function_expression)])

; Top-level constants: const MAX = 10
(program
  (lexical_declaration
    (variable_declarator
      name: (identifier) @name.definition.constant
      value: [(number) (string) (template_string) (object) (array) (true) (false) (regex)])))
; `export` is only allowed at module level (or in a namespace): no `program` anchor, which made
; the query cursor track this pattern across the whole tree (10% of the query's time on TypeScript).
(export_statement
  declaration: (lexical_declaration
    (variable_declarator
      name: (identifier) @name.definition.constant
      value: [(number) (string) (template_string) (object) (array) (true) (false) (regex)])))

(call_expression function: (identifier) @name.reference.call)

(call_expression
  function: (member_expression property: [(property_identifier) (private_property_identifier)] @name.reference.call))

(new_expression constructor: (identifier) @name.reference.class)

(class_heritage (identifier) @name.reference.class)
