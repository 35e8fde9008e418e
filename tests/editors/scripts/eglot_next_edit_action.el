;;; eglot_next_edit_action.el --- a next edit as a code action in eglot (`emacs -Q --batch -l ...')  -*- lexical-binding: t -*-
;;
;; Opens cfg.file in python-mode, starts eglot with the server registered in `eglot-server-programs', makes
;; cfg.rename (didChange), moves point to cfg.cursor and runs `eglot-code-actions' for cfg.kind interactively, as
;; a key bound to it would: with one action of that kind eglot applies its edit and sends its command
;; (workspace/executeCommand) without asking. Then the server is shut down and everything is written as JSON.
;; Config (eglot_common.el): kind, rename (:line :start_col :end_col :text, 0-based line, columns in characters),
;; cursor (:line :col).

(load (expand-file-name "eglot_common.el" (file-name-directory load-file-name)) nil t t)

(defvar tact-offered nil "The code actions the server answered, as eglot read them.")
(defvar tact-executed nil "The commands eglot sent to the server.")

;; Watch, without changing them, what eglot reads and sends.
(advice-add 'eglot--read-execute-code-action :before
            (lambda (actions &rest _) (setq tact-offered actions)))
(advice-add 'eglot-execute-command :after
            (lambda (_server command arguments)
              (push (list :command (symbol-name command) :arguments arguments) tact-executed)))

(defun tact-goto (line col)
  (goto-char (point-min))
  (forward-line line)
  (forward-char col))

(defun tact-text () (buffer-substring-no-properties (point-min) (point-max)))

(condition-case err
    (progn
      (let ((server (tact-connect))
            (before (tact-text))
            (rename (plist-get tact-cfg :rename))
            (cursor (plist-get tact-cfg :cursor)))
        (tact-goto (plist-get rename :line) (plist-get rename :start_col))
        (delete-char (- (plist-get rename :end_col) (plist-get rename :start_col)))
        (insert (plist-get rename :text))
        (eglot--signal-textDocument/didChange)
        (let ((renamed (tact-text)))
          (tact-goto (plist-get cursor :line) (plist-get cursor :col))
          (eglot-code-actions (point) nil (plist-get tact-cfg :kind) t)
          (tact-note "code action applied")
          (let ((after (tact-text))
                (uri (plist-get (eglot--TextDocumentIdentifier) :uri)))
            (eglot--signal-textDocument/didChange)
            (eglot-shutdown server)
            (tact-write (list :uri uri :before before :renamed renamed :after after
                              :offered (vconcat tact-offered) :executed (vconcat (reverse tact-executed))
                              :server_stopped (if (jsonrpc-running-p server) :json-false t)))))))
  (error (tact-write (list :error (format "%S" err)))))
(kill-emacs 0)
