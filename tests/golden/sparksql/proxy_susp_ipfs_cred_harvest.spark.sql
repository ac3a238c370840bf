SELECT *
FROM websession
WHERE coalesce(CAST(`Url` AS STRING) rlike '(?i)(ipfs\\.io/|ipfs\\.io\\s).+\\..+@.+\\.[a-z]+', false);
