; Definitions that become chunks (captures described in indexing/languages.py).
; A `def` in a class or module is a method; `# comment` lines above it are its doc. `class << self` is no
; definition of its own: the methods in it are the enclosing class's (Foo.bar, as `def self.bar` reads).

(class name: [(constant) @name (scope_resolution name: (_) @name)]) @definition.class

(module name: [(constant) @name (scope_resolution name: (_) @name)]) @definition.module

(method name: (_) @name) @definition.function

(singleton_method name: (_) @name) @definition.function
