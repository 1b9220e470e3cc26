-- Shared by refresh.lua and logout.lua (loaded with dofile): each wrk
-- thread takes its share of the refresh tokens in the file BENCH_TOKENS
-- (lines id+1, id+1+n, ... for n = BENCH_THREADS threads) into the global
-- `tokens`; `threads` keeps the thread handles for `done`.
threads = {}
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

tokens = {}

function init(args)
  local n = tonumber(os.getenv("BENCH_THREADS") or "1")
  local i = 0
  for line in io.lines(os.getenv("BENCH_TOKENS")) do
    if i % n == id and #line > 0 then
      table.insert(tokens, line)
    end
    i = i + 1
  end
end
