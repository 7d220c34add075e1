-- The shop database of examples/margins.py: products by vendor, and where specialists write.
CREATE TABLE products (sku TEXT PRIMARY KEY, vendor TEXT, cost REAL, price REAL, stock INTEGER);
INSERT INTO products VALUES
  ('OAT-1KG', 'Acme Foods', 2.10, 3.49, 420),
  ('RICE-2KG', 'Acme Foods', 3.40, 5.29, 310),
  ('BEANS-400', 'Acme Foods', 0.62, 1.19, 900),
  ('COFFEE-500', 'Bean Co', 5.80, 9.99, 150),
  ('TEA-100', 'Leaf Ltd', 1.90, 3.79, 260);
CREATE TABLE faults (skill TEXT);
CREATE TABLE price_requests (id INTEGER PRIMARY KEY, body TEXT);
CREATE TABLE alerts (id INTEGER PRIMARY KEY, message TEXT);
CREATE TABLE crm_notes (id INTEGER PRIMARY KEY, customer TEXT, note TEXT);
CREATE TABLE campaigns (id INTEGER PRIMARY KEY, skus TEXT, message TEXT);
CREATE TABLE credits (id INTEGER PRIMARY KEY, customer TEXT, amount REAL);
CREATE TABLE handbook (topic TEXT, answer TEXT);
INSERT INTO handbook VALUES
  ('refund returns policy days', 'Refunds within 30 days of delivery, with the receipt.'),
  ('shipping delivery times', 'Orders ship within 2 working days; delivery takes 3 to 5 days.'),
  ('price match competitor', 'We match a local competitor''s advertised price on identical items.');
