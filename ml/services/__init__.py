"""The model registry's services, one module per topic (views and tasks stay thin; reads live in
``ml.selectors``), each importing only those listed before it:

* ``snapshots``: freeze a project's labels for a model kind (``ml.data.snapshot`` format);
* ``prereads``: AI pre-reads of a promoted version;
* ``promotion``: evaluate on gold, register, promote (or roll back by hand);
* ``training``: start, execute (resumably, on the gpu queue), cancel, recover runs whose message was lost;
* ``schedules``: training policies and the nightly check.
"""
