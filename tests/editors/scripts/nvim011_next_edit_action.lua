-- Neovim 0.11 (headless, `nvim --headless --clean -i NONE -u nvim011_next_edit_action.lua FILE`): a predicted next
-- edit taken as a code action, the user's path. vim.lsp.config/enable start the Tact server for the Python buffer;
-- on LspAttach the script makes cfg.rename (a didChange), puts the cursor at cfg.cursor and runs
-- vim.lsp.buf.code_action({context = {only = {cfg.kind}}, apply = cfg.apply}). Without apply, vim.ui.select stands
-- in for the menu: it records the entries offered and picks the first; with apply (a key bound to the action, as
-- the README shows) Neovim takes the only action without a menu. Either way Neovim applies the action's edit and
-- runs its command (workspace/executeCommand).
-- With cfg.undo, then `u` in normal mode (the action's edit is one undo block). Then the server is stopped cleanly
-- and the buffer is written as JSON.
-- Config (nvim011_common.lua): kind, apply, undo, rename {line, start_col, end_col, text} (byte columns),
-- cursor {line, col} (0-based line, byte column).
local h = dofile(vim.fs.joinpath(vim.fs.dirname(debug.getinfo(1, "S").source:sub(2)), "nvim011_common.lua"))
local cfg, note, finish, wait_for = h.cfg, h.note, h.finish, h.wait_for
local function feed(keys) vim.api.nvim_feedkeys(vim.keycode(keys), "nt", false) end

-- the code action menu: record what it offers, take the first entry
local offered = nil
vim.ui.select = function(items, opts, on_choice)
  offered = {}
  for _, item in ipairs(items) do
    table.insert(offered, {title = opts.format_item(item), action = item.action})
  end
  note("menu with " .. #items .. " entries")
  on_choice(items[1], 1)
end

vim.api.nvim_create_autocmd("LspAttach", {
  once = true,
  callback = function(args)
    local bufnr, client_id = args.buf, args.data.client_id
    note("LspAttach client " .. client_id)
    local before = vim.api.nvim_buf_get_lines(bufnr, 0, -1, true)
    local executed = false
    vim.api.nvim_create_autocmd("LspRequest", {
      callback = function(a)
        local req = a.data.request
        if req and req.method == "workspace/executeCommand" and req.type == "complete" then
          note("workspace/executeCommand complete")
          executed = true
        elseif req and req.method == "textDocument/codeAction" and req.type == "complete" then
          note("textDocument/codeAction answered")
          vim.defer_fn(function()  -- an answer with no action applies nothing: fail fast instead of at the timeout
            if offered == nil and not executed then
              finish({error = "the code action request was answered, but no action was offered or applied"})
            end
          end, 3000)
        end
      end,
    })
    vim.schedule(function()
      local r = cfg.rename
      vim.api.nvim_buf_set_text(bufnr, r.line, r.start_col, r.line, r.end_col, {r.text})
      local renamed = vim.api.nvim_buf_get_lines(bufnr, 0, -1, true)
      vim.api.nvim_win_set_cursor(0, {cfg.cursor.line + 1, cfg.cursor.col})
      vim.lsp.buf.code_action({context = {only = {cfg.kind}}, apply = cfg.apply})
      wait_for(function() return executed end, cfg.timeout_ms, "workspace/executeCommand to complete", function()
        local applied = vim.api.nvim_buf_get_lines(bufnr, 0, -1, true)
        if cfg.undo then feed("u") end
        -- Neovim sends a change some 150 ms after it (debounced): the undo's reaches the server before the stop
        vim.defer_fn(function()
          finish({
            uri = vim.uri_from_bufnr(bufnr),
            offset_encoding = vim.lsp.get_client_by_id(client_id).offset_encoding,
            before = before,
            renamed = renamed,
            offered = offered,
            applied = applied,
            after = vim.api.nvim_buf_get_lines(bufnr, 0, -1, true),
          })
        end, cfg.undo and 1000 or 0)
      end)
    end)
  end,
})
