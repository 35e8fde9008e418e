-- Neovim 0.11 (headless, `nvim --headless --clean -i NONE -u nvim011.lua FILE`): the user's path.
-- vim.lsp.config/enable start the Tact server for the Python buffer; on LspAttach native LSP completion
-- is enabled. Then keys are fed: `G A` + cfg.typed (didChange edits), <Cmd>lua vim.lsp.completion.get()<CR>,
-- and <C-y> once the menu shows, which inserts the item's textEdit and sends its command as
-- workspace/executeCommand. With cfg.undo, then `u` in normal mode. Then the server is stopped cleanly and the
-- buffer is written as JSON. Config (nvim011_common.lua): typed, undo.
local h = dofile(vim.fs.joinpath(vim.fs.dirname(debug.getinfo(1, "S").source:sub(2)), "nvim011_common.lua"))
local cfg, note, finish, wait_for = h.cfg, h.note, h.finish, h.wait_for

-- menuone: show the menu for a single item; noinsert: <C-y> is what inserts it
vim.o.completeopt = "menu,menuone,noinsert"

local function feed(keys) vim.api.nvim_feedkeys(vim.keycode(keys), "nt", false) end

vim.api.nvim_create_autocmd("LspAttach", {
  once = true,
  callback = function(args)
    local bufnr, client_id = args.buf, args.data.client_id
    note("LspAttach client " .. client_id)
    vim.lsp.completion.enable(true, client_id, bufnr)
    local before = vim.api.nvim_buf_get_lines(bufnr, 0, -1, true)
    local executed, menu_seen = false, false
    vim.api.nvim_create_autocmd("CompleteDone", {
      buffer = bufnr,
      callback = function() note("CompleteDone " .. vim.json.encode(vim.v.completed_item.word or "")) end,
    })
    -- the item's command went to the server and its answer came back
    vim.api.nvim_create_autocmd("LspRequest", {
      callback = function(a)
        local req = a.data.request
        if req and req.method == "workspace/executeCommand" then
          note("workspace/executeCommand " .. req.type)
          if req.type == "complete" then executed = true end
        elseif req and req.method == "textDocument/completion" and req.type == "complete" then
          note("textDocument/completion answered")
          -- an answer without items shows no menu: fail fast instead of at the timeout
          vim.defer_fn(function()
            if not menu_seen then finish({error = "the completion request was answered, but no menu showed (no items?)"}) end
          end, 3000)
        end
      end,
    })
    vim.schedule(function()
      -- G: the last line of the buffer, the unfinished one (the file's final "\n" is no extra line)
      feed("GA" .. cfg.typed)
      feed("<Cmd>lua vim.lsp.completion.get()<CR>")
      wait_for(function() return vim.fn.pumvisible() == 1 end, cfg.timeout_ms, "the completion menu", function()
        menu_seen = true
        local info = vim.fn.complete_info({"items", "selected"})
        local typed_line = vim.api.nvim_get_current_line()
        local cursor = vim.api.nvim_win_get_cursor(0)
        note("menu with " .. #info.items .. " items, selected " .. tostring(info.selected))
        feed("<C-y>")
        wait_for(function() return vim.fn.pumvisible() == 0 end, 5000, "the menu to close", function()
          -- the CompleteDone handler applies the textEdit and sends the command
          wait_for(function() return executed end, 5000, "workspace/executeCommand to complete", function()
            feed("<Esc>")
            if cfg.undo then feed("u") end  -- the whole insert (the typed word and the item) is one undo block
            -- Neovim sends a change some 150 ms after it (debounced): the undo's reaches the server before the stop
            vim.defer_fn(function()
              finish({
                uri = vim.uri_from_bufnr(bufnr),
                offset_encoding = vim.lsp.get_client_by_id(client_id).offset_encoding,
                before = before,
                typed_line = typed_line,
                cursor = cursor,
                menu = info.items,
                selected = info.selected,
                after = vim.api.nvim_buf_get_lines(bufnr, 0, -1, true),
                mode = vim.api.nvim_get_mode().mode,
              })
            end, cfg.undo and 1000 or 0)
          end)
        end)
      end)
    end)
  end,
})
