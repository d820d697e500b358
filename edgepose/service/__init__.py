"""The camera-classifier service behind ``edgepose serve`` (device side: no TensorFlow).

sources (frames in: ``frame_source`` contract, ``file_sources``, ``camera_sources``)
-> pipeline (newest frame, inference, watchdog; ``shared_state``) -> results
(smoothing, threshold, events) -> sinks (stdout, JSONL, MQTT) and http_server;
sdnotify talks to systemd, unit writes the systemd unit. ``serve.run_service``
wires it all together.
"""
