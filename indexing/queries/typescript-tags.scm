; Symbol table: definitions and references (captures described in indexing/languages.py).

[(class_declaration name: (type_identifier) @name.definition.class)
 (abstract_class_declaration name: (type_identifier) @name.definition.class)]

(interface_declaration name: (type_identifier) @name.definition.interface)

(enum_declaration name: (identifier) @name.definition.class)

(type_alias_declaration name: (type_identifier) @name.definition.type)

(internal_module name: (identifier) @name.definition.module)

[(function_declaration name: (identifier) @name.definition.function)
 (generator_function_declaration name: (identifier) @name.definition.function)
 (function_signature name: (identifier) @name.definition.function)]

[(method_definition name: [(property_identifier) (private_property_identifier)] @name.definition.method)
 (abstract_method_signature name: (property_identifier) @name.definition.method)
 (method_signature name: (property_identifier) @name.definition.method)]

(public_field_definition
  name: [(property_identifier) (private_property_identifier)] @name.definition.method
  value: [(arrow_function) (function_expression)])

(variable_declarator
  name: (identifier) @name.definition.function
  value: [(arrow_function) (function_expression)])

; Top-level constants: export const MAX = 10
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

(extends_clause value: (identifier) @name.reference.class)

(implements_clause (type_identifier) @name.reference.implementation)

(extends_type_clause type: (type_identifier) @name.reference.interface)

; Type references in annotations, generics and type arguments.
(type_annotation (type_identifier) @name.reference.type)
(generic_type name: (type_identifier) @name.reference.type)
(type_arguments (type_identifier) @name.reference.type)
(union_type (type_identifier) @name.reference.type)
(array_type (type_identifier) @name.reference.type)
