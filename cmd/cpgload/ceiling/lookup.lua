-- cpgload's lookup workload for wrk: the members of a random one of the
-- 1,000 preloaded groups.
request = function()
  return wrk.format("GET", "/v1/scopes/default/members?name=/svc/" .. math.random(0, 999) .. "/x")
end
