; Symbol table: definitions and references (captures described in indexing/languages.py).

[(class_declaration name: (identifier) @name.definition.class)
 (struct_declaration name: (identifier) @name.definition.class)
 (enum_declaration name: (identifier) @name.definition.class)
 (record_declaration name: (identifier) @name.definition.class)]

(interface_declaration name: (identifier) @name.definition.interface)

(namespace_declaration name: (_) @name.definition.module)

[(method_declaration name: (identifier) @name.definition.method)
 (constructor_declaration name: (identifier) @name.definition.method)]

(local_function_statement name: (identifier) @name.definition.function)

(property_declaration name: (identifier) @name.definition.property)

(field_declaration
  (modifier "const")
  (variable_declaration (variable_declarator name: (identifier) @name.definition.constant)))

(invocation_expression function: (identifier) @name.reference.call)

(invocation_expression function: (member_access_expression name: (identifier) @name.reference.call))

(invocation_expression function: (generic_name (identifier) @name.reference.call))

(invocation_expression function: (member_access_expression name: (generic_name (identifier) @name.reference.call)))

(object_creation_expression type: [(identifier) @name.reference.class
                                   (generic_name (identifier) @name.reference.class)
                                   (qualified_name name: (identifier) @name.reference.class)])

(base_list [(identifier) @name.reference.implementation
            (generic_name (identifier) @name.reference.implementation)
            (qualified_name name: (identifier) @name.reference.implementation)])

[(parameter type: (identifier) @name.reference.type)
 (variable_declaration type: (identifier) @name.reference.type)
 (method_declaration returns: (identifier) @name.reference.type)
 (property_declaration type: (identifier) @name.reference.type)
 (type_argument_list (identifier) @name.reference.type)
 (parameter type: (generic_name (identifier) @name.reference.type))
 (variable_declaration type: (generic_name (identifier) @name.reference.type))
 (method_declaration returns: (generic_name (identifier) @name.reference.type))]
