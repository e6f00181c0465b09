; Kconfig symbol table: each `config`/`menuconfig` defines its symbol (the parser also records it as
; `CONFIG_<NAME>`, the name C code and Makefiles use); `depends on`, `select`, `imply`, `if`, `default`
; and `visible if` expressions reference symbols (numbers and the tristate values y, m and n are not symbols).

(config name: (name (symbol) @name.definition.config))
(menuconfig name: (name (symbol) @name.definition.config))
(choice name: (name (symbol) @name.definition.config))

(reverse_dependencies (name (symbol) @name.reference.select))
(weak_reverse_dependencies (symbol) @name.reference.select)

([(dependencies (symbol) @name.reference.config)
  (binary_expression (symbol) @name.reference.config)
  (unary_expression (symbol) @name.reference.config)
  (parenthesized_expression (symbol) @name.reference.config)
  (conditional_clause (symbol) @name.reference.config)
  (if (symbol) @name.reference.config)
  (default_value (symbol) @name.reference.config)
  (limiting_menu_display (symbol) @name.reference.config)]
 (#match? @name.reference.config "^([A-Za-z_][A-Za-z0-9_]+|[A-Zabcdefghijklopqrstuvwxz_])$"))
