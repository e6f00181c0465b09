; Symbol table: definitions and references (captures described in indexing/languages.py).

[(class_declaration name: (identifier) @name.definition.class)
 (enum_declaration name: (identifier) @name.definition.class)
 (record_declaration name: (identifier) @name.definition.class)]

[(interface_declaration name: (identifier) @name.definition.interface)
 (annotation_type_declaration name: (identifier) @name.definition.interface)]

[(method_declaration name: (identifier) @name.definition.method)
 (constructor_declaration name: (identifier) @name.definition.method)]

(field_declaration
  (modifiers "static" "final")
  declarator: (variable_declarator name: (identifier) @name.definition.constant))

(enum_constant name: (identifier) @name.definition.constant)

(method_invocation name: (identifier) @name.reference.call)

(object_creation_expression type: [(type_identifier) @name.reference.class
                                   (generic_type (type_identifier) @name.reference.class)
                                   (scoped_type_identifier (type_identifier) @name.reference.class .)])

(superclass [(type_identifier) @name.reference.class (generic_type (type_identifier) @name.reference.class)])

(super_interfaces
  (type_list [(type_identifier) @name.reference.implementation
              (generic_type (type_identifier) @name.reference.implementation)]))

(extends_interfaces
  (type_list [(type_identifier) @name.reference.interface
              (generic_type (type_identifier) @name.reference.interface)]))

[(formal_parameter type: (type_identifier) @name.reference.type)
 (method_declaration type: (type_identifier) @name.reference.type)
 (field_declaration type: (type_identifier) @name.reference.type)
 (local_variable_declaration type: (type_identifier) @name.reference.type)
 (type_arguments (type_identifier) @name.reference.type)
 (method_declaration type: (generic_type (type_identifier) @name.reference.type))
 (field_declaration type: (generic_type (type_identifier) @name.reference.type))
 (formal_parameter type: (generic_type (type_identifier) @name.reference.type))
 (local_variable_declaration type: (generic_type (type_identifier) @name.reference.type))]
