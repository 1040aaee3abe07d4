"""The notifier's pure core: alerts in, notifications out, with Alertmanager's semantics.

``config`` reads ``notify.yaml``; ``routes`` walks the routing tree; ``groups`` batches alerts
into notifications on an injected clock; ``payloads`` builds what each receiver is sent;
``intervals`` says when mute and active time intervals hold. None of them does I/O.
``deliver`` sends one notification to one receiver (HTTP, SMTP, a command) with retries and
the per-receiver limits of ``limits``; the service on top consumes the alert topic and keeps
the notification log.
"""
