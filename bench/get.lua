-- GET /clients of a random client among N (env BENCH_CLIENTS).
local n = tonumber(os.getenv("BENCH_CLIENTS") or "10000")
local key = os.getenv("BENCH_KEY") or "secure-api-key"
math.randomseed(os.time())
request = function()
  return wrk.format("GET", "/clients", {
    ["Authorization"] = "Bearer " .. key,
    ["X-Client-Id"] = tostring(math.random(1, n)) })
end
