; Definitions that become chunks. See indexing/languages.py for the capture conventions.

(decorated_definition
  definition: (function_definition name: (identifier) @name) @definition.function) @outer

(function_definition name: (identifier) @name) @definition.function

(decorated_definition
  definition: (class_definition name: (identifier) @name) @definition.class) @outer

(class_definition name: (identifier) @name) @definition.class
