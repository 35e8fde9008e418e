-- What the Neovim 0.11 scripts share, loaded with `dofile' (it returns the table below): the config (JSON, path in
-- $TACT_EDITOR_CONFIG: cmd, out, root, init_options, timeout_ms, and each script's own keys), the timeout, the Tact
-- server started for Python buffers (vim.lsp.config/enable), waits, and finish(), which stops the server cleanly
-- and writes the result as JSON to cfg.out.
local M = {}
local cfg = vim.fn.json_decode(table.concat(vim.fn.readfile(vim.env.TACT_EDITOR_CONFIG), "\n"))
M.cfg = cfg
local done = false
local server_exit  -- {code, signal} once the server process has exited
local events = {}

function M.note(msg) table.insert(events, string.format("%.3f %s", vim.uv.hrtime() / 1e9, msg)) end

function M.finish(result)
  if done then return end
  done = true
  result.events = events
  for _, client in ipairs(vim.lsp.get_clients({name = "tact"})) do
    client:stop()  -- shutdown request, then exit: the server flushes its edits and telemetry
    -- (client:is_stopped() is true as soon as stop() is called; wait for the process itself)
    result.server_stopped = vim.wait(5000, function() return server_exit ~= nil end, 20)
  end
  result.server_exit = server_exit
  vim.fn.writefile({vim.json.encode(result)}, cfg.out)
  vim.cmd("qall!")
end

-- Calls then_do once pred() holds, polling every 20 ms; finishes with an error after ms.
function M.wait_for(pred, ms, what, then_do)
  local deadline = vim.uv.now() + ms
  local function tick()
    if done then return end
    if pred() then return then_do() end
    if vim.uv.now() > deadline then return M.finish({error = "timeout waiting for " .. what}) end
    vim.defer_fn(tick, 20)
  end
  tick()
end

vim.defer_fn(function() M.finish({error = "timeout after " .. cfg.timeout_ms .. " ms"}) end, cfg.timeout_ms)

vim.lsp.config("tact", {
  cmd = cfg.cmd,
  filetypes = {"python"},
  root_dir = cfg.root,
  init_options = cfg.init_options,
  on_exit = function(code, signal) server_exit = {code = code, signal = signal} end,
})
vim.lsp.enable("tact")

return M
