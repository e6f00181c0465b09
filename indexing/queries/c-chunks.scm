; Definitions that become chunks (captures described in indexing/languages.py).
; A typedef names its struct, union or enum: `typedef struct {...} queue_t` is chunk `queue_t`.

(function_definition
  declarator: [(function_declarator declarator: (identifier) @name)
               (pointer_declarator declarator: (function_declarator declarator: (identifier) @name))
               (pointer_declarator
                 declarator: (pointer_declarator declarator: (function_declarator declarator: (identifier) @name)))
              ]) @definition.function

(type_definition type: (struct_specifier body: (_)) @definition.struct declarator: (type_identifier) @name) @outer
(struct_specifier name: (type_identifier) @name body: (_)) @definition.struct

(type_definition type: (union_specifier body: (_)) @definition.union declarator: (type_identifier) @name) @outer
(union_specifier name: (type_identifier) @name body: (_)) @definition.union

(type_definition type: (enum_specifier body: (_)) @definition.enum declarator: (type_identifier) @name) @outer
(enum_specifier name: (type_identifier) @name body: (_)) @definition.enum
