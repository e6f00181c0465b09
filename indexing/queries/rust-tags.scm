; Symbol table: definitions and references (captures described in indexing/languages.py).

(function_item name: (identifier) @name.definition.function)

(function_signature_item name: (identifier) @name.definition.function)

[(struct_item name: (type_identifier) @name.definition.class)
 (union_item name: (type_identifier) @name.definition.class)
 (enum_item name: (type_identifier) @name.definition.class)]

(trait_item name: (type_identifier) @name.definition.interface)

(mod_item name: (identifier) @name.definition.module)

(macro_definition name: (identifier) @name.definition.macro)

[(const_item name: (identifier) @name.definition.constant)
 (static_item name: (identifier) @name.definition.constant)]

(type_item name: (type_identifier) @name.definition.type)

(call_expression function: (identifier) @name.reference.call)

(call_expression function: (field_expression field: (field_identifier) @name.reference.call))

(call_expression function: (scoped_identifier name: (identifier) @name.reference.call))

(call_expression function: (generic_function function: (identifier) @name.reference.call))

(call_expression
  function: (generic_function function: (field_expression field: (field_identifier) @name.reference.call)))

(call_expression
  function: (generic_function function: (scoped_identifier name: (identifier) @name.reference.call)))

(macro_invocation macro: (identifier) @name.reference.call)

(impl_item trait: (type_identifier) @name.reference.implementation)

(impl_item trait: (scoped_type_identifier name: (type_identifier) @name.reference.implementation))

(impl_item trait: (generic_type type: (type_identifier) @name.reference.implementation))

(struct_expression name: (type_identifier) @name.reference.class)

; Type references where a type is written: parameters, fields, returns, generic arguments, `let`.
[(parameter type: [(type_identifier) @name.reference.type
                   (generic_type type: (type_identifier) @name.reference.type)])
 (reference_type type: [(type_identifier) @name.reference.type
                        (generic_type type: (type_identifier) @name.reference.type)])
 (field_declaration type: [(type_identifier) @name.reference.type
                           (generic_type type: (type_identifier) @name.reference.type)])
 (type_arguments [(type_identifier) @name.reference.type
                  (generic_type type: (type_identifier) @name.reference.type)])
 (function_item return_type: [(type_identifier) @name.reference.type
                              (generic_type type: (type_identifier) @name.reference.type)])
 (function_signature_item return_type: [(type_identifier) @name.reference.type
                                        (generic_type type: (type_identifier) @name.reference.type)])
 (let_declaration type: [(type_identifier) @name.reference.type
                         (generic_type type: (type_identifier) @name.reference.type)])]
