"""A stub Bitbucket that behaves like Bitbucket's embedded Tomcat where proxies care.

Runs with the Python standard library, git and the openssl CLI only, inside the lab's
``stub`` image (``python3 -m lab.stub``), on a host (``python -m lab.stub --home DIR``),
or in-process (:func:`lab.stub.server.start_stub`). It never imports the rest of the lab.

``lab/stub/SOURCES.md`` names, for each behaviour a check's verdict depends on, the code
that does it and its evidence (an Atlassian, Tomcat or Spring Boot source, a measurement
on stock Tomcat, or "assumed").
"""
