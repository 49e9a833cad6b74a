-- benches/load: wrk script that ends wrk once FILL_REQUESTS responses arrived (default 100000),
-- printing `fill: <responses> responses, <ok> answered 200` first. Run it with -t1 (one thread,
-- one Lua state, so the count is global). wrk's own `wrk.thread:stop()` would stop the thread
-- but still wait for the whole -d, hence the exit.
local limit = tonumber(os.getenv("FILL_REQUESTS") or "100000")
local done, ok = 0, 0

function response(status, headers, body)
  done = done + 1
  if status == 200 then
    ok = ok + 1
  end
  if done >= limit then
    io.write(string.format("fill: %d responses, %d answered 200\n", done, ok))
    io.flush()
    os.exit(0)
  end
end
