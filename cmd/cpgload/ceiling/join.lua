-- cpgload's join workload for wrk: every request adds a new member, the
-- joins spread over 64 groups per wrk thread.
local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  n = 0
end

request = function()
  n = n + 1
  local body = string.format('{"group":"/load/%d/%d","member":"w%d-%d"}', id, n % 64, id, n)
  return wrk.format("POST", "/v1/scopes/default/join", {["Content-Type"] = "application/json"}, body)
end
