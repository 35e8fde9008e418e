-- Neovim 0.7 (headless, `nvim --headless --clean -i NONE -u nvim07.lua FILE`): start the Tact server
-- with vim.lsp.start_client, attach the buffer, request textDocument/completion at the end of the
-- last non-empty line, stop the server cleanly, and write the result as JSON to cfg.out.
-- Config (JSON, path in $TACT_EDITOR_CONFIG): cmd, out, root, init_options, timeout_ms.
local cfg = vim.fn.json_decode(table.concat(vim.fn.readfile(vim.env.TACT_EDITOR_CONFIG), "\n"))
local done = false

local server_exit  -- {code, signal} once the server process has exited

local function stop_servers(result)
  for _, client in pairs(vim.lsp.get_active_clients()) do
    client.stop()  -- shutdown request, then exit: the server flushes its telemetry
    result.server_stopped = vim.wait(5000, function() return server_exit ~= nil end, 20)
  end
  result.server_exit = server_exit
end

local function finish(result)
  if done then return end
  done = true
  local ok, err = pcall(stop_servers, result)
  if not ok then result.stop_error = tostring(err) end
  vim.fn.writefile({vim.fn.json_encode(result)}, cfg.out)
  vim.cmd("qall!")
end

vim.defer_fn(function()
  finish({error = "timeout: no completion within " .. cfg.timeout_ms .. " ms"})
end, cfg.timeout_ms)

local function last_nonempty_line(bufnr)
  local lines = vim.api.nvim_buf_get_lines(bufnr, 0, -1, true)
  for i = #lines, 1, -1 do
    if lines[i] ~= "" then return i - 1, lines[i] end
  end
  return 0, lines[1] or ""
end

local function start()
  local bufnr = vim.api.nvim_get_current_buf()
  local client_id = vim.lsp.start_client({
    name = "tact",
    cmd = cfg.cmd,
    root_dir = cfg.root,
    init_options = cfg.init_options,
    -- on_attach runs after didOpen was sent (on_init runs before the buffer is attached)
    on_attach = function(client, b)
      local line, text = last_nonempty_line(b)
      local params = {
        textDocument = {uri = vim.uri_from_bufnr(b)},
        position = {line = line, character = #text},  -- the sample is ASCII: bytes = UTF-16 units
        context = {triggerKind = 1},
      }
      local ok, err = pcall(client.request, "textDocument/completion", params, function(rerr, result)
        finish({uri = params.textDocument.uri, position = params.position, line_text = text,
                filetype = vim.bo[b].filetype, response_error = rerr, result = result,
                nvim_version = tostring(vim.version().major) .. "." .. tostring(vim.version().minor)})
      end, b)
      if not ok then finish({error = "request failed: " .. tostring(err)}) end
    end,
    on_exit = function(code, signal)
      server_exit = {code = code, signal = signal}
      if not done then
        vim.schedule(function()
          finish({error = "server exited early: code " .. tostring(code) .. " signal " .. tostring(signal)})
        end)
      end
    end,
  })
  if not client_id then return finish({error = "vim.lsp.start_client failed"}) end
  vim.lsp.buf_attach_client(bufnr, client_id)
end

-- The file named on the command line is loaded after this script runs.
vim.api.nvim_create_autocmd("VimEnter", {once = true, callback = start})
