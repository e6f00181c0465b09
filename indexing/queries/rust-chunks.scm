; Definitions that become chunks (captures described in indexing/languages.py).
; Attributes (#[derive(...)]) and /// comments above an item are picked up by the chunker.

(function_item name: (identifier) @name) @definition.function

(function_signature_item name: (identifier) @name) @definition.function

(struct_item name: (type_identifier) @name) @definition.struct

(union_item name: (type_identifier) @name) @definition.union

(enum_item name: (type_identifier) @name) @definition.enum

(trait_item name: (type_identifier) @name) @definition.trait

; `impl Trait for Type` is named after Type, so its methods read Type.method; `impl Trait for &Type`
; and `impl Trait for str` likewise (Type, str).
(impl_item
  type: [(type_identifier) @name
         (generic_type type: (type_identifier) @name)
         (scoped_type_identifier name: (type_identifier) @name)
         (generic_type type: (scoped_type_identifier name: (type_identifier) @name))
         (primitive_type) @name
         (reference_type
           type: [(type_identifier) @name
                  (generic_type type: (type_identifier) @name)
                  (scoped_type_identifier name: (type_identifier) @name)
                  (generic_type type: (scoped_type_identifier name: (type_identifier) @name))
                  (primitive_type) @name])]) @definition.impl

; A type without a name of its own (`[T]`, `[T; N]`, tuples, `()`, `dyn Trait`, pointers, `fn` types,
; references to them): the impl is named after its trait, so its methods are members of something.
(impl_item
  trait: [(type_identifier) @name
          (generic_type type: (type_identifier) @name)
          (scoped_type_identifier name: (type_identifier) @name)
          (generic_type type: (scoped_type_identifier name: (type_identifier) @name))]
  type: [(array_type) (tuple_type) (unit_type) (bounded_type) (dynamic_type) (pointer_type)
         (function_type) (never_type)
         (reference_type
           type: [(array_type) (tuple_type) (unit_type) (bounded_type) (dynamic_type) (pointer_type)
                  (function_type) (reference_type)])]) @definition.impl

(mod_item name: (identifier) @name body: (declaration_list)) @definition.module

(macro_definition name: (identifier) @name) @definition.macro
