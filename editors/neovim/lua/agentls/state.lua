--- What the plugin knows about its clients, agent runs, proposals and progress, in one table per setup.
---
--- `State.new(config)` makes it; `require("agentls")` keeps the one made by `setup{}` and hands it to the
--- other modules. Runs and proposals are keyed by the ids the server gave them; `*_order` lists keep the
--- order they arrived in, so "the latest" is well defined.
local State = {}
State.__index = State

function State.new(config)
  return setmetatable({
    config = config,
    --- root folder -> client id
    clients = {},
    --- client id -> the server's `serverInfo` {name, version}
    server_info = {},
    --- runId -> { id, client_id, kind, title, status = "running"|"done"|"failed"|"cancelled", bufnr }
    runs = {},
    run_order = {},
    --- proposalId -> { id, run_id, client_id, summary, files, diff, usage,
    ---                 status = "pending"|"accepting"|"accepted"|"rejected"|"failed" }
    proposals = {},
    proposal_order = {},
    --- "client:token" -> { title, message, percentage }
    progress = {},
    progress_order = {},
    --- proposalId -> bufnr of its open preview
    previews = {},
    --- answers shown so far (names their scratch buffers)
    answers = 0,
    --- server messages the plugin shows in its own words ({ client_id, matches(text), at }), and the
    --- server's recent messages ({ client_id, text, at }): see `agentls.messages`
    expected_messages = {},
    server_messages = {},
    --- "client id:request" -> true while that request waits for its server to start
    waiting = {},
  }, State)
end

function State:add_run(run)
  if self.runs[run.id] == nil then
    table.insert(self.run_order, run.id)
  end
  self.runs[run.id] = run
  return run
end

function State:add_proposal(proposal)
  if self.proposals[proposal.id] == nil then
    table.insert(self.proposal_order, proposal.id)
  end
  self.proposals[proposal.id] = proposal
  return proposal
end

--- The most recent run still running, or nil.
function State:latest_running()
  for i = #self.run_order, 1, -1 do
    local run = self.runs[self.run_order[i]]
    if run and run.status == "running" then
      return run
    end
  end
  return nil
end

--- The most recent proposal waiting for accept or reject, or nil.
function State:latest_pending()
  for i = #self.proposal_order, 1, -1 do
    local proposal = self.proposals[self.proposal_order[i]]
    if proposal and proposal.status == "pending" then
      return proposal
    end
  end
  return nil
end

function State:pending_count()
  local n = 0
  for _, proposal in pairs(self.proposals) do
    if proposal.status == "pending" then
      n = n + 1
    end
  end
  return n
end

function State:set_progress(key, value)
  if value == nil then
    self.progress[key] = nil
    for i, k in ipairs(self.progress_order) do
      if k == key then
        table.remove(self.progress_order, i)
        break
      end
    end
    return
  end
  if self.progress[key] == nil then
    table.insert(self.progress_order, key)
  end
  self.progress[key] = value
end

--- The newest progress still going, or nil.
function State:latest_progress()
  local key = self.progress_order[#self.progress_order]
  return key and self.progress[key] or nil
end

--- Forget everything about one client (it exited). Returns what was lost with it (run titles and
--- "proposal ID", to tell the user) and the ids of its lost proposals.
function State:forget_client(client_id)
  for root, id in pairs(self.clients) do
    if id == client_id then
      self.clients[root] = nil
    end
  end
  for key in pairs(vim.deepcopy(self.progress)) do
    if vim.startswith(key, tostring(client_id) .. ":") then
      self:set_progress(key, nil)
    end
  end
  -- What the gone server was doing cannot finish, and its proposals can be neither accepted nor rejected:
  -- they are failed (not "ready" for good), and the titles are returned so the user hears of them.
  local lost, lost_proposals = {}, {}
  for _, run in pairs(self.runs) do
    if run.client_id == client_id and run.status == "running" then
      run.status = "failed"
      table.insert(lost, run.title or run.id)
    end
  end
  for _, proposal in pairs(self.proposals) do
    local open = proposal.status == "pending" or proposal.status == "accepting"
    if proposal.client_id == client_id and open then
      proposal.status = "failed"
      table.insert(lost, "proposal " .. tostring(proposal.id))
      table.insert(lost_proposals, proposal.id)
    end
  end
  return lost, lost_proposals
end

return State
