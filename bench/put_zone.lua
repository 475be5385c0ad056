-- PUT /clients/zones: a random zone 1..8 of a random client.
local n = tonumber(os.getenv("BENCH_CLIENTS") or "10000")
local key = os.getenv("BENCH_KEY") or "secure-api-key"
math.randomseed(os.time() + 1)
local i = 0
request = function()
  i = i + 1
  local body = string.format(
    '{"client_id": %d, "zone_id": %d, "Zone_area": "Sone %d", "ModuleNo": 0}',
    math.random(1, n), math.random(1, 8), i)
  return wrk.format("PUT", "/clients/zones", {
    ["Authorization"] = "Bearer " .. key,
    ["Content-Type"] = "application/json" }, body)
end
