-- POST a fixed body with fixed headers from files; a fresh delivery id per request so the
-- GitHub dedup path is not what gets measured.
local body_file = os.getenv("WRK_BODY")
local headers_file = os.getenv("WRK_HEADERS")
local f = assert(io.open(body_file, "rb"))
wrk.body = f:read("*a")
f:close()
wrk.method = "POST"
for line in io.lines(headers_file) do
  local k, v = line:match("^([^:]+):%s*(.*)$")
  if k then wrk.headers[k] = v end
end
local counter = 0
local thread_id = 0
setup = function(thread)
  thread_id = thread_id + 1
  thread:set("tid", thread_id)
end
request = function()
  counter = counter + 1
  wrk.headers["X-GitHub-Delivery"] = string.format("bench-%d-%d", tid or 0, counter)
  return wrk.format()
end
