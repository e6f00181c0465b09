; Definitions that become chunks (captures described in indexing/languages.py).
; A method's receiver type is its @scope, so `func (s *Store) Get` is chunk `Store.Get`.

(function_declaration name: (identifier) @name) @definition.function

(method_declaration
  receiver: (parameter_list
    (parameter_declaration
      type: [(type_identifier) @scope
             (pointer_type (type_identifier) @scope)
             (generic_type type: (type_identifier) @scope)
             (pointer_type (generic_type type: (type_identifier) @scope))]))
  name: (field_identifier) @name) @definition.method

; Types: the chunk starts at `type` when the declaration holds a single type.
(type_declaration
  .
  (type_spec name: (type_identifier) @name type: (struct_type (field_declaration_list) @body)) @definition.struct
  .) @outer
(type_spec name: (type_identifier) @name type: (struct_type (field_declaration_list) @body)) @definition.struct

(type_declaration
  .
  (type_spec name: (type_identifier) @name type: (interface_type) @body) @definition.interface
  .) @outer
(type_spec name: (type_identifier) @name type: (interface_type) @body) @definition.interface
