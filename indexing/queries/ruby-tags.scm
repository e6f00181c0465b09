; Symbol table: definitions and references (captures described in indexing/languages.py).

(class name: [(constant) @name.definition.class
              (scope_resolution name: (constant) @name.definition.class)])

(module name: [(constant) @name.definition.module
               (scope_resolution name: (constant) @name.definition.module)])

(method name: (_) @name.definition.function)

(singleton_method name: (_) @name.definition.function)

(assignment left: (constant) @name.definition.constant)

(call method: [(identifier) (constant)] @name.reference.call)

(superclass [(constant) @name.reference.class
             (scope_resolution name: (constant) @name.reference.class)])

(call receiver: [(constant) @name.reference.class
                 (scope_resolution name: (constant) @name.reference.class)])

; `attr_reader :name, :size` (and attr_writer, attr_accessor) defines methods named so: the symbols are
; their names (the chunker drops a symbol's leading colon).
(call method: (identifier) @_attr
      arguments: (argument_list [(simple_symbol) @name.definition.property
                                 (string (string_content) @name.definition.property)])
      (#match? @_attr "^attr_(reader|writer|accessor)$"))
