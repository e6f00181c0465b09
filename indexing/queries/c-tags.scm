; Symbol table: definitions and references (captures described in indexing/languages.py).
; Prototypes count as definitions too: in a header they are all there is.

[(function_declarator declarator: (identifier) @name.definition.function)]

[(struct_specifier name: (type_identifier) @name.definition.class body: (_))
 (union_specifier name: (type_identifier) @name.definition.class body: (_))
 (enum_specifier name: (type_identifier) @name.definition.class body: (_))]

(type_definition declarator: (type_identifier) @name.definition.type)

(preproc_def name: (identifier) @name.definition.constant)

(preproc_function_def name: (identifier) @name.definition.macro)

(enumerator name: (identifier) @name.definition.constant)

(call_expression function: (identifier) @name.reference.call)

(call_expression function: (field_expression field: (field_identifier) @name.reference.call))

[(struct_specifier name: (type_identifier) @name.reference.type !body)
 (union_specifier name: (type_identifier) @name.reference.type !body)
 (enum_specifier name: (type_identifier) @name.reference.type !body)]

[(parameter_declaration type: (type_identifier) @name.reference.type)
 (declaration type: (type_identifier) @name.reference.type)
 (field_declaration type: (type_identifier) @name.reference.type)
 (function_definition type: (type_identifier) @name.reference.type)
 (type_descriptor type: (type_identifier) @name.reference.type)]
