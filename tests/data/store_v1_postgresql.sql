-- The schema as release 0.1.0 (schema_info version 1, before migrations) created it on postgresql:
-- generated from that release's bot/store.py metadata with SQLAlchemy's CreateTable.

CREATE TABLE conversation_consent (
	conversation_id VARCHAR(255) NOT NULL, 
	choice VARCHAR(10), 
	pending TEXT, 
	updated_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	PRIMARY KEY (conversation_id)
);

CREATE TABLE conversation_refs (
	conversation_id VARCHAR(255) NOT NULL, 
	service_url VARCHAR(500) NOT NULL, 
	tenant_id VARCHAR(100) NOT NULL, 
	aad_object_id VARCHAR(100) NOT NULL, 
	user_name VARCHAR(200) NOT NULL, 
	updated_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	PRIMARY KEY (conversation_id)
);

CREATE TABLE handoffs (
	handoff_id VARCHAR(100) NOT NULL, 
	from_bot VARCHAR(100) NOT NULL, 
	to_bot VARCHAR(100) NOT NULL, 
	aad_object_id VARCHAR(100) NOT NULL, 
	tenant_id VARCHAR(100) NOT NULL, 
	status VARCHAR(20) NOT NULL, 
	outcome TEXT, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	updated_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	PRIMARY KEY (handoff_id)
);

CREATE TABLE history_messages (
	id BIGSERIAL NOT NULL, 
	conversation_id VARCHAR(255) NOT NULL, 
	message TEXT NOT NULL, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	PRIMARY KEY (id)
);

CREATE INDEX ix_history_conversation ON history_messages (conversation_id, id);

CREATE TABLE processed_activities (
	activity_id VARCHAR(255) NOT NULL, 
	conversation_id VARCHAR(255) NOT NULL, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	PRIMARY KEY (activity_id)
);

CREATE TABLE schema_info (
	id SERIAL NOT NULL, 
	version INTEGER NOT NULL, 
	started_at TIMESTAMP WITH TIME ZONE, 
	PRIMARY KEY (id)
);
