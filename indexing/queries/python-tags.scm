; Symbol table: definitions and references.

(function_definition name: (identifier) @name.definition.function)

(class_definition name: (identifier) @name.definition.class)

(module (assignment left: (identifier) @name.definition.constant))

(call function: (identifier) @name.reference.call)

(call function: (attribute attribute: (identifier) @name.reference.call))

(class_definition
  superclasses: (argument_list
    [(identifier) @name.reference.class
     (attribute attribute: (identifier) @name.reference.class)]))

(type (identifier) @name.reference.type)

(type (generic_type (identifier) @name.reference.type))
