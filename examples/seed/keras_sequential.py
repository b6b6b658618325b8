"""The seed tutorial's Keras program in ember: a 500 -> 50 (ReLU) -> 500 network, SGD, MSE."""

import ember
from ember.models import Sequential, layers

model = Sequential()
model.add(layers.Dense(50, input_dim=500, activation="relu"))
model.add(layers.Dense(500))
model.compile(loss="mean_squared_error", optimizer=ember.optim.SGD(model.parameters(), lr=1.0))
x, y = ember.randn(32, 500), ember.randn(32, 500)
model.fit(x, y, epochs=50, batch_size=32)
