;;; eglot.el --- drive eglot against the Tact server (`emacs -Q --batch -l eglot.el`)  -*- lexical-binding: t -*-
;;
;; Opens cfg.file in python-mode, starts eglot with the server registered in `eglot-server-programs',
;; types cfg.typed at the end of the last line (didChange), sends a raw textDocument/completion with
;; `jsonrpc-request', then runs `completion-at-point' (the UI path: eglot's capf inserts the item),
;; shuts the server down (`eglot-shutdown': shutdown request, exit notification, then eglot kills the
;; process, "status 9") and writes everything as JSON to cfg.out.
;; Config (eglot_common.el): typed.

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
          (let ((capf-result (completion-at-point)))
            (tact-note "completion-at-point returned %S" capf-result)
            (let ((capf-line (tact-current-line))
                  (uri (plist-get (eglot--TextDocumentIdentifier) :uri))
                  (after (buffer-substring-no-properties (point-min) (point-max))))
              (eglot--signal-textDocument/didChange)
              (eglot-shutdown server)
              (tact-write (list :uri uri :before before :typed_line typed-line :position position
                                :raw raw :capf_returned (if capf-result t :json-false)
                                :capf_line capf-line :after after
                                :server_stopped (if (jsonrpc-running-p server) :json-false t))))))))
  (error (tact-write (list :error (format "%S" err)))))
(kill-emacs 0)
