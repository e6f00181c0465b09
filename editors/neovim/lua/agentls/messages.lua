--- The server's `window/showMessage`, and the events the plugin says itself: each is shown once.
---
--- The server shows some events with `window/showMessage` for every editor, and the plugin handles the
--- same events through agentls' own notifications and answers:
--- - a run that failed (`agentls/runFailed`, then the message) and a run that changed nothing
---   (`agentls/proposalReady` with no file, then its summary): the plugin says these better (the run's
---   title as the user started it; an answer in its window), so it `expect`s the server's message and the
---   handler drops it. The server sends its notification first, so the expectation is always in place.
--- - a commit made: the server's text is the better one (the commit's subject) and comes before its
---   answer, so the plugin asks `shown` and stays quiet when the server said it.
--- An accept or commit the server refuses, and an accept the editor did not apply, are not among them: to
--- agentls clients the server says these only in the command's answer (an error, or `failureReason`),
--- which the plugin shows (`agentls.runs.execute`, `agentls.accept`).
--- Every other message goes on to Neovim's handler (`vim.lsp.handlers["window/showMessage"]`, looked up
--- when the message arrives, so a user's replacement of it is honoured).
local M = {}

--- How long an expectation waits for its message, and a shown message counts as just shown (ms).
M.window_ms = 10000

local function now()
  return vim.loop.hrtime() / 1e6
end

--- Drop entries older than the window.
local function fresh(list)
  local cutoff = now() - M.window_ms
  for i = #list, 1, -1 do
    if list[i].at < cutoff then
      table.remove(list, i)
    end
  end
  return list
end

--- The plugin shows this event itself: drop the next server message of `client_id` for which
--- `matches(text)` is true (within `window_ms`).
function M.expect(state, client_id, matches)
  table.insert(state.expected_messages, { client_id = client_id, matches = matches, at = now() })
end

--- Whether the server of `client_id` showed a message containing `text` within `window_ms`.
function M.shown(state, client_id, text)
  if type(text) ~= "string" or text == "" then
    return false
  end
  for _, m in ipairs(fresh(state.server_messages)) do
    if m.client_id == client_id and m.text:find(text, 1, true) ~= nil then
      return true
    end
  end
  return false
end

--- The `window/showMessage` handler of agentls clients.
function M.handler(state)
  return function(err, params, ctx, cfg)
    local text = type(params) == "table" and type(params.message) == "string" and params.message or nil
    if text then
      local expected = fresh(state.expected_messages)
      for i, e in ipairs(expected) do
        if e.client_id == ctx.client_id and e.matches(text) then
          table.remove(expected, i)
          return
        end
      end
      local shown = fresh(state.server_messages)
      table.insert(shown, { client_id = ctx.client_id, text = text, at = now() })
      if #shown > 20 then
        table.remove(shown, 1)
      end
    end
    local default = vim.lsp.handlers["window/showMessage"]
    if default then
      return default(err, params, ctx, cfg)
    end
  end
end

return M
