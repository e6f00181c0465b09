; Definitions that become chunks (captures described in indexing/languages.py).
; A `def` in a class or module is a method; `# comment` lines above it are its doc.

(class name: [(constant) @name (scope_resolution name: (_) @name)]) @definition.class

(singleton_class value: (_) @name) @definition.class

(module name: [(constant) @name (scope_resolution name: (_) @name)]) @definition.module

(method name: (_) @name) @definition.function

(singleton_method name: (_) @name) @definition.function
