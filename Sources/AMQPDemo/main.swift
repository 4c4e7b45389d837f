print("AMQP demo: not written yet")
