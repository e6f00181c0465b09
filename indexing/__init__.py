"""Workspace indexing: tree-sitter chunks and symbols stored in embedded LanceDB, with hybrid search.

Terms used across the package:

- *file record*: one indexed file (path, content hash, mtime, size, language). It is written last for
  each file, after that file's chunks and symbols are stored, so an interrupted run resumes honestly.
- *chunk*: a unit of retrieval: a function, method, class (or a class skeleton), a Markdown section, or a
  window of lines. Carries path, line range, enclosing names, signature and doc comment.
- *symbol*: a definition or reference found by a tags query.
- *hit*: a ranked search result (`SearchHit`).

Nothing here knows about LSP or the agent.
"""
