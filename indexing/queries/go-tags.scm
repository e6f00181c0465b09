; Symbol table: definitions and references (captures described in indexing/languages.py).

(function_declaration name: (identifier) @name.definition.function)

(method_declaration name: (field_identifier) @name.definition.method)

(method_elem name: (field_identifier) @name.definition.method)

(type_spec name: (type_identifier) @name.definition.class type: (struct_type))

(type_spec name: (type_identifier) @name.definition.interface type: (interface_type))

(type_spec
  name: (type_identifier) @name.definition.type
  type: [(type_identifier) (qualified_type) (pointer_type) (slice_type) (array_type) (map_type)
         (function_type) (channel_type) (generic_type)])

(type_alias name: (type_identifier) @name.definition.type)

(source_file (const_declaration (const_spec name: (identifier) @name.definition.constant)))

(source_file (var_declaration (var_spec name: (identifier) @name.definition.constant)))

(call_expression function: (identifier) @name.reference.call)

(call_expression function: (selector_expression field: (field_identifier) @name.reference.call))

(composite_literal type: (type_identifier) @name.reference.class)

(qualified_type name: (type_identifier) @name.reference.type)

[(parameter_declaration type: (type_identifier) @name.reference.type)
 (field_declaration type: (type_identifier) @name.reference.type)
 (pointer_type (type_identifier) @name.reference.type)
 (slice_type element: (type_identifier) @name.reference.type)
 (map_type value: (type_identifier) @name.reference.type)
 (function_declaration result: (type_identifier) @name.reference.type)
 (method_declaration result: (type_identifier) @name.reference.type)
 (method_elem result: (type_identifier) @name.reference.type)]
