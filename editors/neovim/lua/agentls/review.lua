--- Per-hunk review of a proposal in its preview: which hunk each diff line belongs to, the user's
--- decisions (accept / reject per hunk), and what to send for them.
---
--- The server's hunks (`agentls/proposal` files[].hunks: `{id, oldStart, oldLines, newStart, newLines}`)
--- are the changed blocks of each file, without context; the unified diff shown may merge nearby blocks
--- into one `@@` section. A `-` line belongs to the hunk whose old lines hold it, a `+` line to the one
--- whose new lines hold it. The hunks count lines as editors do; a file whose lines end in a lone `\r`
--- (one line to git, so its `diff` shows the whole file as one line) comes with `editorDiff`, its diff in
--- those lines, which is laid out instead. Pure: no buffers, no server.
local M = {}

--- The lines of `text` (none for nil or ""; no empty last line for a final newline).
function M.split_lines(text)
  if type(text) ~= "string" or text == "" then
    return {}
  end
  local lines = vim.split(text, "\n", { plain = true })
  if lines[#lines] == "" then
    table.remove(lines)
  end
  return lines
end

local function hunk_at(hunks, field_start, field_count, number)
  for _, hunk in ipairs(hunks) do
    local start, count = hunk[field_start], hunk[field_count]
    if type(start) == "number" and type(count) == "number" and count > 0 then
      if number >= start and number < start + count then
        return hunk.id
      end
    end
  end
  return nil
end

--- The diff lines of `files` (each `{diff, hunks}`, maybe `editorDiff`) and, per line, where it is:
--- `{ file = i, section = n, hunk = id | nil }` (`section` counts `@@` sections; 0 on a file's header).
--- Returns `lines, where, order` (`order`: every hunk id, in the order shown).
function M.layout(files)
  local lines, where, order, seen = {}, {}, {}, {}
  local section = 0
  for index, file in ipairs(files or {}) do
    local hunks = type(file.hunks) == "table" and file.hunks or {}
    for _, hunk in ipairs(hunks) do
      if not seen[hunk.id] then
        seen[hunk.id] = true
        table.insert(order, hunk.id)
      end
    end
    local old, new, in_section = 0, 0, 0
    local diff = type(file.editorDiff) == "string" and file.editorDiff or file.diff
    for _, line in ipairs(M.split_lines(diff)) do
      local hunk = nil
      local a, c = line:match("^@@ %-(%d+)[,%d]* %+(%d+)[,%d]* @@")
      if a then
        section = section + 1
        in_section = section
        old, new = tonumber(a), tonumber(c)
      elseif in_section > 0 then
        local sign = line:sub(1, 1)
        if sign == "-" then
          hunk = hunk_at(hunks, "oldStart", "oldLines", old)
          old = old + 1
        elseif sign == "+" then
          hunk = hunk_at(hunks, "newStart", "newLines", new)
          new = new + 1
        elseif sign == " " then
          old, new = old + 1, new + 1
        end
      end
      table.insert(lines, line)
      table.insert(where, { file = index, section = in_section, hunk = hunk })
    end
  end
  return lines, where, order
end

--- The hunk ids a key press at diff line `i` is about: the line's own hunk; on a `@@` header or a context
--- line, every hunk of that section; on a file's header, every hunk of the file; elsewhere (the preview's
--- own header) every hunk.
function M.hunks_at(files, where, i)
  local here = where[i]
  if here == nil then
    local all = {}
    for _, file in ipairs(files or {}) do
      for _, hunk in ipairs(file.hunks or {}) do
        table.insert(all, hunk.id)
      end
    end
    return all
  end
  if here.hunk then
    return { here.hunk }
  end
  local out, seen = {}, {}
  for _, other in ipairs(where) do
    local same = here.section > 0 and other.section == here.section
      or here.section == 0 and other.file == here.file
    if same and other.hunk and not seen[other.hunk] then
      seen[other.hunk] = true
      table.insert(out, other.hunk)
    end
  end
  if #out == 0 and here.section == 0 then
    for _, hunk in ipairs((files[here.file] or {}).hunks or {}) do
      table.insert(out, hunk.id)
    end
  end
  return out
end

--- What applying the decisions means: `{ action = "accept" | "reject" | "partial" | "none", hunks,
--- undecided }`. "accept": every hunk accepted (the whole proposal, no `hunks`); "reject": every hunk
--- rejected; "partial": accept `hunks` (then the `undecided` rest stays pending, or, when none is
--- undecided, the rejected rest is dropped); "none": nothing marked to accept.
function M.plan(order, decisions)
  local accepted, rejected, undecided = {}, 0, 0
  for _, id in ipairs(order) do
    local d = decisions[id]
    if d == "accept" then
      table.insert(accepted, id)
    elseif d == "reject" then
      rejected = rejected + 1
    else
      undecided = undecided + 1
    end
  end
  if #order > 0 and #accepted == #order then
    return { action = "accept", undecided = 0 }
  end
  if #order > 0 and rejected == #order then
    return { action = "reject", undecided = 0 }
  end
  if #accepted == 0 then
    return { action = "none", undecided = undecided }
  end
  return { action = "partial", hunks = accepted, undecided = undecided }
end

--- "2 hunks: 1 to accept, 1 to reject, 0 undecided".
function M.summary(order, decisions)
  local accept, reject = 0, 0
  for _, id in ipairs(order) do
    if decisions[id] == "accept" then
      accept = accept + 1
    elseif decisions[id] == "reject" then
      reject = reject + 1
    end
  end
  return string.format(
    "%d hunk%s: %d to accept, %d to reject, %d undecided",
    #order,
    #order == 1 and "" or "s",
    accept,
    reject,
    #order - accept - reject
  )
end

--- The verification as the preview states it: "passed", "not verified (no tests ran)", "not verified"
--- (the checks could not run) or "FAILED".
function M.verification_label(verified, detail)
  if verified then
    return "passed"
  end
  local text = type(detail) == "string" and detail:lower() or ""
  if text:find("no tests? ran") or text:find("no test ran") then
    return "not verified (no tests ran)"
  end
  if
    vim.startswith(text, "not verified")
    or text:find("environment problem", 1, true)
    or text:find("was not verified", 1, true) -- the rest of a partly accepted proposal
  then
    return "not verified"
  end
  return "FAILED"
end

return M
