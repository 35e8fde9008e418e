;;; eglot_common.el --- what the eglot scripts share, loaded with `load'  -*- lexical-binding: t -*-
;;
;; Reads the config (JSON, path in $TACT_EDITOR_CONFIG: cmd, out, file, init_options, timeout_ms, and each script's
;; own keys) into `tact-cfg', arms the timeout, registers the Tact server in `eglot-server-programs', and gives
;; `tact-note' (events), `tact-write' (the result as JSON to cfg.out) and `tact-connect' (eglot started on cfg.file).

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

(defun tact-connect ()
  "Open cfg.file in python-mode, start eglot on it and return the connected server."
  (find-file (plist-get tact-cfg :file))
  (python-mode)
  (apply #'eglot (eglot--guess-contact))
  (let ((server (eglot-current-server)))
    (unless server (error "eglot did not connect"))
    (tact-note "connected: %s" (jsonrpc-name server))
    server))
