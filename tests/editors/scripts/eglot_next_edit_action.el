;;; eglot_next_edit_action.el --- a next edit as a code action in eglot (`emacs -Q --batch -l ...')  -*- lexical-binding: t -*-
;;
;; Opens cfg.file in python-mode, starts eglot with the server registered in `eglot-server-programs', makes
;; cfg.rename (didChange), moves point to cfg.cursor and runs `eglot-code-actions' for cfg.kind interactively, as
;; a key bound to it would: with one action of that kind eglot applies its edit and sends its command
;; (workspace/executeCommand) without asking. Then the server is shut down and everything is written as JSON.
;; Config (JSON, path in $TACT_EDITOR_CONFIG): cmd, out, file, init_options, timeout_ms, kind,
;; rename (:line :start_col :end_col :text, 0-based line, columns in characters), cursor (:line :col).

;; With -Q, Debian's elpa packages (eglot and its dependencies) are not on the load path.
(let ((default-directory "/usr/share/emacs/site-lisp/elpa/"))
  (when (file-directory-p default-directory)
    (normal-top-level-add-subdirs-to-load-path)))
(require 'json)
(require 'eglot)

(defvar tact-cfg (let ((json-object-type 'plist) (json-array-type 'list))
                   (json-read-file (getenv "TACT_EDITOR_CONFIG"))))
(defvar tact-events nil)
(defvar tact-offered nil "The code actions the server answered, as eglot read them.")
(defvar tact-executed nil "The commands eglot sent to the server.")

(defun tact-note (fmt &rest args)
  (push (format "%.3f %s" (float-time) (apply #'format fmt args)) tact-events))

(defun tact-write (obj)
  (with-temp-file (plist-get tact-cfg :out)
    (insert (json-encode (append obj (list :events (vconcat (reverse tact-events))
                                           :emacs_version emacs-version))))))

(run-at-time (/ (plist-get tact-cfg :timeout_ms) 1000.0) nil
             (lambda ()
               (tact-write (list :error "timeout"))
               (kill-emacs 3)))

(setq eglot-server-programs
      (list (cons 'python-mode
                  (append (plist-get tact-cfg :cmd)
                          (list :initializationOptions (plist-get tact-cfg :init_options)))))
      eglot-sync-connect t
      eglot-connect-timeout (/ (plist-get tact-cfg :timeout_ms) 1000)
      eglot-autoreconnect nil)

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
      (find-file (plist-get tact-cfg :file))
      (python-mode)
      (apply #'eglot (eglot--guess-contact))
      (let ((server (eglot-current-server))
            (before (tact-text))
            (rename (plist-get tact-cfg :rename))
            (cursor (plist-get tact-cfg :cursor)))
        (unless server (error "eglot did not connect"))
        (tact-note "connected: %s" (jsonrpc-name server))
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
