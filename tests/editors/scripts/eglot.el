;;; eglot.el --- drive eglot against the Tact server (`emacs -Q --batch -l eglot.el`)  -*- lexical-binding: t -*-
;;
;; Opens cfg.file in python-mode, starts eglot with the server registered in `eglot-server-programs',
;; types cfg.typed at the end of the last line (didChange), sends a raw textDocument/completion with
;; `jsonrpc-request', then runs `completion-at-point' (the UI path: eglot's capf inserts the item),
;; shuts the server down (`eglot-shutdown': shutdown request, exit notification, then eglot kills the
;; process, "status 9") and writes everything as JSON to cfg.out.
;; With cfg.undo, the item's insertion is then undone (`undo-more', as `undo' does) before the shutdown.
;; Config (eglot_common.el): typed, undo.

(load (expand-file-name "eglot_common.el" (file-name-directory load-file-name)) nil t t)

(defun tact-current-line ()
  (buffer-substring-no-properties (line-beginning-position) (line-end-position)))

(condition-case err
    (progn
      (let ((server (tact-connect))
            (before (buffer-substring-no-properties (point-min) (point-max))))
        ;; end of the last non-empty line: the file ends in "\n"
        (goto-char (point-max))
        (skip-chars-backward "\n")
        (insert (plist-get tact-cfg :typed))
        (eglot--signal-textDocument/didChange)
        (let* ((typed-line (tact-current-line))
               (position (eglot--pos-to-lsp-position))
               (raw (jsonrpc-request server :textDocument/completion
                                     (list :textDocument (eglot--TextDocumentIdentifier)
                                           :position position
                                           :context (list :triggerKind 1))
                                     :timeout (/ (plist-get tact-cfg :timeout_ms) 1000))))
          (tact-note "raw completion answered")
          (undo-boundary)
          (let ((capf-result (completion-at-point)))
            (tact-note "completion-at-point returned %S" capf-result)
            (let ((capf-line (tact-current-line))
                  (uri (plist-get (eglot--TextDocumentIdentifier) :uri))
                  (after (buffer-substring-no-properties (point-min) (point-max))))
              (eglot--signal-textDocument/didChange)
              (when (plist-get tact-cfg :undo)
                ;; undo the changes since the boundary: the item's insertion (Emacs's `undo' in a command loop)
                (let ((pending-undo-list (if (car buffer-undo-list) buffer-undo-list (cdr buffer-undo-list))))
                  (undo-more 1))
                (setq after (buffer-substring-no-properties (point-min) (point-max)))
                (eglot--signal-textDocument/didChange)
                (jsonrpc-request server :tact/status nil))  ; answered after the change: the server has it
              (eglot-shutdown server)
              (tact-write (list :uri uri :before before :typed_line typed-line :position position
                                :raw raw :capf_returned (if capf-result t :json-false)
                                :capf_line capf-line :after after
                                :server_stopped (if (jsonrpc-running-p server) :json-false t))))))))
  (error (tact-write (list :error (format "%S" err)))))
(kill-emacs 0)
