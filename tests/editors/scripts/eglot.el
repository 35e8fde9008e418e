;;; eglot.el --- drive eglot against the Tact server (`emacs -Q --batch -l eglot.el`)  -*- lexical-binding: t -*-
;;
;; Opens cfg.file in python-mode, starts eglot with the server registered in `eglot-server-programs',
;; types cfg.typed at the end of the last line (didChange), sends a raw textDocument/completion with
;; `jsonrpc-request', then runs `completion-at-point' (the UI path: eglot's capf inserts the item),
;; shuts the server down (`eglot-shutdown': shutdown request, exit notification, then eglot kills the
;; process, "status 9") and writes everything as JSON to cfg.out.
;; Config (JSON, path in $TACT_EDITOR_CONFIG): cmd, out, file, init_options, timeout_ms, typed.

;; With -Q, Debian's elpa packages (eglot and its dependencies) are not on the load path.
(let ((default-directory "/usr/share/emacs/site-lisp/elpa/"))
  (when (file-directory-p default-directory)
    (normal-top-level-add-subdirs-to-load-path)))
(require 'json)
(require 'eglot)

(defvar tact-cfg (let ((json-object-type 'plist) (json-array-type 'list))
                   (json-read-file (getenv "TACT_EDITOR_CONFIG"))))
(defvar tact-events nil)

(defun tact-note (fmt &rest args)
  (push (format "%.3f %s" (float-time) (apply #'format fmt args)) tact-events))

(defun tact-write (obj)
  (with-temp-file (plist-get tact-cfg :out)
    (insert (json-encode (append obj (list :events (vconcat (reverse tact-events))
                                           :emacs_version emacs-version))))))

;; Timers run while Emacs waits for the server, so this fires even inside `jsonrpc-request'.
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

(defun tact-current-line ()
  (buffer-substring-no-properties (line-beginning-position) (line-end-position)))

(condition-case err
    (progn
      (find-file (plist-get tact-cfg :file))
      (python-mode)
      (apply #'eglot (eglot--guess-contact))
      (let ((server (eglot-current-server))
            (before (buffer-substring-no-properties (point-min) (point-max))))
        (unless server (error "eglot did not connect"))
        (tact-note "connected: %s" (jsonrpc-name server))
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
