-- PATCH /clients: change the Location of a random client.
local n = tonumber(os.getenv("BENCH_CLIENTS") or "10000")
local key = os.getenv("BENCH_KEY") or "secure-api-key"
math.randomseed(os.time() + 2)
local i = 0
request = function()
  i = i + 1
  local body = string.format(
    '{"client_id": %d, "info": {"Location": "Ny gate %d"}}',
    math.random(1, n), i)
  return wrk.format("PATCH", "/clients", {
    ["Authorization"] = "Bearer " .. key,
    ["Content-Type"] = "application/json" }, body)
end
