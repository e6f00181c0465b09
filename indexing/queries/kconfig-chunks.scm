; Kconfig definitions that become chunks (captures described in indexing/languages.py).
; A `config`/`menuconfig` block is one chunk named by its symbol; its signature is the `config NAME`
; line (@body marks the first attribute after the name). A `choice` holds its configs like a class; a
; `menu` is transparent: its entries are chunked on their own with the menu's title among their parents.

(config name: (name (symbol) @name) . (_) @body) @definition.config
(config name: (name (symbol) @name)) @definition.config
(menuconfig name: (name (symbol) @name) . (_) @body) @definition.config
(menuconfig name: (name (symbol) @name)) @definition.config
(choice name: (name (symbol) @name)) @definition.choice
(choice (input_prompt (string (string_content) @name))) @definition.choice
(menu name: (string (string_content) @name)) @definition.module
