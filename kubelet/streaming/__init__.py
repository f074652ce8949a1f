"""The kubelet's streaming server: exec, attach and port-forward over WebSocket.

Data flow (``kubectl exec -it web -- sh``):

    kubectl --WebSocket v5.channel.k8s.io--> apiserver pods/exec (apiserver.streamproxy: the pod's
        node, the kubelet's credential) --the same WebSocket messages, relayed--> this kubelet:
    routes.add_routes: GET /exec/{ns}/{pod}/{container}?command=..&stdin=&stdout=&stderr=&tty=
                       GET /attach/{ns}/{pod}/{container}?stdin=&stdout=&stderr=&tty=
                       GET /portforward/{ns}/{pod}[?ports=8080,9090]
      -> context.StreamingContext: which Docker container / which sandbox (pid, IP)
      -> exec.py: Docker exec / attach sockets <-> channels (machinery.remotecommand), resize, status
      -> portforward.py: SPDY/3.1 over WebSocket (spdy.py; kubectl) or the channel protocol (the
         Python client) <-> TCP connections to localhost:PORT inside the pod's network namespace

Every blocking engine call runs in the kubelet's own thread pool (``ctx.run_blocking``).
"""
