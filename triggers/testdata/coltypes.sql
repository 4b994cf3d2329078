-- coltypes: one column of each type rowgear maps, for checking that the
-- trigger and binlog sources write the same envelope values (events/doc.go).
-- Two parts, split at the line "-- rows": the table, then the writes. Run the
-- table part, install the source (triggers, or start the binlog bridge), then
-- run the rows part. Expected row images: coltypes.expected.json.
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
  tx      TEXT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
-- rows
SET time_zone = '+00:00';
INSERT INTO coltypes VALUES
  (1, -2147483648, 4294967295, -9223372036854775808, 18446744073709551615, -128,
   -12345678.90, 1.5, -2.5e-300, '1000-01-01', '-838:59:59.000000',
   '1000-01-01 00:00:00', '9999-12-31 23:59:59.999999', '2038-01-19 03:14:07.999999',
   1901, '{"k": [1, "x", null, true], "n": {"m": 1.25}}',
   REPEAT(X'00FF7F80', 50), X'00FF', b'11111111', 'large', 'a,c',
   'abc', 'emoji 😀 ünïcödé', CONCAT('line1', CHAR(10), 'line2 "quoted" \\ back ''single''')),
  (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
   NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  (3, 2147483647, 0, 9223372036854775807, 0, 127,
   0.05, 0, 0.1, '2024-02-29', '12:34:56.000001',
   '2024-02-29 12:34:56', '2024-02-29 12:34:56.000001', '1970-01-01 00:00:01.000000',
   2155, '"a string"', '', '', b'0', 'small', '',
   '', '', '');
