-- coltypes: one column of each type rowgear maps, for checking that the
-- trigger and binlog sources write the same envelope values (events/doc.go).
-- Two parts, split at the line "-- rows": the table, then the writes. Run the
-- table part, install the source (triggers, or start the binlog bridge), then
-- run the rows part. Expected row images: coltypes.expected.json.
SET time_zone = '+00:00';
SET time_zone = '+00:00';
CREATE TABLE coltypes (
  id      INT NOT NULL PRIMARY KEY,
  i       INT NULL,
  iu      INT UNSIGNED NULL,
  bi      BIGINT NULL,
  bu      BIGINT UNSIGNED NULL,
  ti      TINYINT NULL,
  dc      DECIMAL(10,2) NULL,
  f       FLOAT NULL,
  d       DOUBLE NULL,
  dt      DATE NULL,
  tm      TIME(6) NULL,
  dtm     DATETIME NULL,
  dtm6    DATETIME(6) NULL,
  ts      TIMESTAMP(6) NULL DEFAULT NULL,
  y       YEAR NULL,
  j       JSON NULL,
  bl      BLOB NULL,
  vb      VARBINARY(64) NULL,
  bt      BIT(8) NULL,
  e       ENUM('small', 'large') NULL,
  st      SET('a', 'b', 'c') NULL,
  ch      CHAR(10) NULL,
  vc      VARCHAR(100) NULL,
  tx      TEXT NULL,
  mu      MEDIUMINT UNSIGNED NULL,
  sm      SMALLINT NULL,
  t0      TIME NULL,
  ts0     TIMESTAMP NULL DEFAULT NULL,
  b64     BIT(64) NULL,
  bn      BINARY(4) NULL,
  l1      VARCHAR(20) CHARACTER SET latin1 NULL,
  l1t     TEXT CHARACTER SET latin1 NULL,
  e1      ENUM('é', 'b') CHARACTER SET latin1 NULL,
  uu      UUID NULL,
  i4      INET4 NULL,
  i6      INET6 NULL,
  g       BIGINT AS (i * 2) VIRTUAL,
  gs      VARCHAR(100) AS (UPPER(vc)) STORED
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
-- rows
SET time_zone = '+00:00';
INSERT INTO coltypes VALUES
  (1, -2147483648, 4294967295, -9223372036854775808, 18446744073709551615, -128,
   -12345678.90, 1.5, -2.5e-300, '1000-01-01', '-838:59:59.000000',
   '1000-01-01 00:00:00', '9999-12-31 23:59:59.999999', '2038-01-19 03:14:07.999999',
   1901, '{"k": [1, "x", null, true], "n": {"m": 1.25}}',
   REPEAT(X'00FF7F80', 50), X'00FF', b'11111111', 'large', 'a,c',
   'abc', 'emoji 😀 ünïcödé', CONCAT('line1', CHAR(10), 'line2 "quoted" \\ back ''single'''),
   16777215, -32768, '-838:59:59', '2038-01-19 03:14:07', b'1111111111111111111111111111111111111111111111111111111111111111',
   X'0100', 'é ü ß', 'Grüße', 'é', '6ccd780c-baba-1026-9564-5b8c656024db', '1.2.3.4', '::ffff:1.2.3.4',
   DEFAULT, DEFAULT),
  (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
   NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
   NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, DEFAULT, DEFAULT),
  (3, 2147483647, 0, 9223372036854775807, 0, 127,
   0.05, 0, 0.1, '2024-02-29', '12:34:56.000001',
   '2024-02-29 12:34:56', '2024-02-29 12:34:56.000001', '1970-01-01 00:00:01.000000',
   2155, '"a string"', '', '', b'0', 'small', '',
   '', '', '',
   0, 32767, '00:00:00', '1970-01-01 00:00:01', b'0',
   X'00000000', '', '', 'b', '00000000-0000-0000-0000-000000000000', '0.0.0.0', '::',
   DEFAULT, DEFAULT);
-- MySQL's zero dates and YEAR 0, written where the sql_mode allows them.
SET sql_mode = '';
INSERT INTO coltypes (id, dt, dtm, dtm6, ts, ts0, y) VALUES
  (5, '0000-00-00', '0000-00-00 00:00:00', '0000-00-00 00:00:00', '0000-00-00 00:00:00', '0000-00-00 00:00:00', 0);
-- FLOAT and DOUBLE around MariaDB's switch between plain and exponent
-- notation; more UUID and INET6 forms.
INSERT INTO coltypes (id, f, d, uu, i6) VALUES
  (6, 16777217, 1e308, '1eec8a84-eb02-11f1-993a-02fc00000001', '2001:db8::ff00:42:8329'),
  (7, -3.40282e38, 0.00000015, '123e4567-e89b-42d3-a456-556642440000', '::1.2.3.4'),
  (8, 1.5e-7, 1.2345678901234568e17, 'ffffffff-ffff-ffff-ffff-ffffffffffff', '::1'),
  (9, 0.1, 1234567890123456.8, NULL, '1::');
