; Symbol table: definitions and references (captures described in indexing/languages.py).

[(class_declaration name: (name) @name.definition.class)
 (enum_declaration name: (name) @name.definition.class)]

[(interface_declaration name: (name) @name.definition.interface)
 (trait_declaration name: (name) @name.definition.interface)]

(namespace_definition name: (namespace_name) @name.definition.module)

(function_definition name: (name) @name.definition.function)

(method_declaration name: (name) @name.definition.method)

(const_element (name) @name.definition.constant)

(function_call_expression function: [(name) @name.reference.call
                                     (qualified_name (name) @name.reference.call)])

(member_call_expression name: (name) @name.reference.call)

(nullsafe_member_call_expression name: (name) @name.reference.call)

(scoped_call_expression name: (name) @name.reference.call)

(object_creation_expression [(name) @name.reference.class
                             (qualified_name (name) @name.reference.class)])

(base_clause [(name) @name.reference.class (qualified_name (name) @name.reference.class)])

(class_interface_clause [(name) @name.reference.implementation
                         (qualified_name (name) @name.reference.implementation)])

(use_declaration [(name) @name.reference.implementation (qualified_name (name) @name.reference.implementation)])

(named_type [(name) @name.reference.type (qualified_name (name) @name.reference.type)])
