; Symbol table: definitions and references (captures described in indexing/languages.py).

(function_declarator declarator: [(identifier) (destructor_name) (operator_name)] @name.definition.function)

(function_declarator declarator: (field_identifier) @name.definition.method)

(function_declarator declarator: (qualified_identifier name: (identifier) @name.definition.function))

[(class_specifier name: (type_identifier) @name.definition.class body: (_))
 (struct_specifier name: (type_identifier) @name.definition.class body: (_))
 (union_specifier name: (type_identifier) @name.definition.class body: (_))
 (enum_specifier name: (type_identifier) @name.definition.class body: (_))]

(namespace_definition name: (namespace_identifier) @name.definition.module)

(type_definition declarator: (type_identifier) @name.definition.type)

(alias_declaration name: (type_identifier) @name.definition.type)

(preproc_def name: (identifier) @name.definition.constant)

(preproc_function_def name: (identifier) @name.definition.macro)

(call_expression function: (identifier) @name.reference.call)

(call_expression function: (field_expression field: (field_identifier) @name.reference.call))

(call_expression function: (qualified_identifier name: (identifier) @name.reference.call))

(call_expression function: (template_function name: (identifier) @name.reference.call))

(call_expression function: (qualified_identifier name: (template_function name: (identifier) @name.reference.call)))

(new_expression type: (type_identifier) @name.reference.class)

(base_class_clause [(type_identifier) @name.reference.class
                    (qualified_identifier name: (type_identifier) @name.reference.class)])

[(parameter_declaration type: (type_identifier) @name.reference.type)
 (declaration type: (type_identifier) @name.reference.type)
 (field_declaration type: (type_identifier) @name.reference.type)
 (function_definition type: (type_identifier) @name.reference.type)
 (type_descriptor type: (type_identifier) @name.reference.type)
 (template_type name: (type_identifier) @name.reference.type)]
